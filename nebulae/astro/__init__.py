"""astro: models. `dock` holds the crafts (layers, losses, optimizers, steps); `hangar` the model zoo."""
