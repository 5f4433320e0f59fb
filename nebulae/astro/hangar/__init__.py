"""hangar: the model zoo, written once with dock crafts so every model runs on both engines."""
