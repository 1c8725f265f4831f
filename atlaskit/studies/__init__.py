"""Study pipelines: what each chapter runs (data, presets per scale, training, evaluation), so that
chapters hold narrative, parameters and calls."""
