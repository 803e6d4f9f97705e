"""Package named like the original's ``blocks`` so pickled modules resolve to
``blocks.model_vit_inception`` when ``bench/reference`` is on ``sys.path``."""
