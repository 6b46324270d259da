"""CardiacMTL library: cine MRI in, segmentation, clinical indices and reports out.

Qt-free and Slicer-free: the command line, the Slicer module and the browser app all call the functions
exported here. Network code (torch) is imported lazily so that I/O and indices work without torch.
"""

__version__ = "0.1.0"
