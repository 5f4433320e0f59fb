"""fuel: pack raw files into HDF5 (Generator), serve NumPy batches (Tank), augment (Comburant)."""
