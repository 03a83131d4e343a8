"""store/vectors"""
