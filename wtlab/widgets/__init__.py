"""wtlab.widgets"""
