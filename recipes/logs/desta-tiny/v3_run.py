"""The v3 run's data and training stages (evaluation: `python -m desta.recipes.tiny.heldout_report` and
the recipe's run_tiny on the same folder). Generation runs as two one-thread processes::

    python recipes/logs/desta-tiny/v3_run.py gen 1 &        # part 1
    python recipes/logs/desta-tiny/v3_run.py main $!        # part 0, waits for part 1, collects, trains
"""

import os
import sys
import time
from pathlib import Path

import torch

from desta.recipes.tiny import V3_OPTIONS, TinyOptions, stages

recipe = str(Path(__file__).with_name("v3-recipe.yaml"))  # the packaged recipe with epochs 1, max_steps 140
opts = TinyOptions(out_dir="runs/tiny-v3", variants=("self",), recipe=recipe, **V3_OPTIONS)
torch.set_num_threads(1)
corpus = stages.build_corpus_stage(opts)
if sys.argv[1] == "gen":
    stages.generate_stage(opts, corpus, part=int(sys.argv[2]))
    sys.exit(0)
t = time.time()
stages.generate_stage(opts, corpus, part=0)
while os.path.exists(f"/proc/{int(sys.argv[2])}"):
    time.sleep(10)
path = stages.generate_stage(opts, corpus)
print("data", time.time() - t, flush=True)
t = time.time()
stages.train_stage(opts, "self", path, corpus)
print("train", time.time() - t, flush=True)
