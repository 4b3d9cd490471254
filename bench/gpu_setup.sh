# Sourced by the bench/gpu_*.sh scripts, from the repository's root: gankit's dependencies on a bare GPU machine
# that has python3 with torch, a check that CUDA is there, and gankit from this checkout with its cache
# (GANKIT_CACHE_DIR if set, else ~/.cache/gankit).
python3 -c 'import torch, torchvision, yaml, tqdm, matplotlib, PIL, scipy, filelock' 2>/dev/null ||
  python3 -m pip install -q torchvision pyyaml tqdm matplotlib pillow scipy filelock
python3 -c 'import torch; assert torch.cuda.is_available(), "no CUDA GPU"; print("GPU:", torch.cuda.get_device_name())'
export PYTHONPATH=$PWD/src GANKIT_CACHE_DIR=${GANKIT_CACHE_DIR:-$HOME/.cache/gankit}

# The CIFAR-10 evaluator trains on the CPU once per cache (14 to 24 min on 2 cores): a GANKIT_CACHE_DIR that
# already holds it spares a short GPU loan that.
cifar10_evaluator() { python3 -m gankit evaluator train cifar10 --data-dir "$1"; }
