"""interfaces/ui"""
