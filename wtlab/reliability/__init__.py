"""wtlab.reliability"""
