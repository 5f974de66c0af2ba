"""wtlab.transport"""
