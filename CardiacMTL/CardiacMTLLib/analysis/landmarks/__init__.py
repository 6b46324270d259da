"""Landmarks: RV insertion points (short axis), mitral hinges (long axis), edits."""
