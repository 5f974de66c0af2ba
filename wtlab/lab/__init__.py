"""wtlab.lab"""
