"""wtlab.net"""
