"""Diagnosis: features, criteria and the classifiers behind one interface."""
