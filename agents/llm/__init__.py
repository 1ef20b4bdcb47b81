"""Model providers behind one small interface, tiers and fallback chains."""
