"""Checks that need several MPI processes; run by tests/test_distributed.py as
``mpiexec -n 2 python tests/mpi_checks.py`` (and -n 3).  Each rank prints one
JSON line of results; the test asserts on them.
"""
import json

import numpy as np
from mpi4py import MPI

import cnnlab.nn as nn
import cnnlab.nn.functional as F
from cnnlab import Tensor
from cnnlab.data import ArrayDataset, DataLoader
from cnnlab.training.distributed.buckets import GradientBuckets
from cnnlab.training.distributed.data import ShardedLoader, share_bounds
from cnnlab.training.distributed.sync_bn import convert_sync_batchnorm
from cnnlab.training.distributed.world import MPIWorld

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
out: dict = {"rank": rank}


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def small_model(dtype=np.float64) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, dtype=dtype), nn.BatchNorm2d(4, dtype=dtype),
                         nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 6, dtype=dtype),
                         nn.BatchNorm1d(6, dtype=dtype), nn.Linear(6, 3, dtype=dtype))


rng = np.random.default_rng(7)              # the same data on every rank
B = 7                                        # uneven shares: 3 + 4 on two ranks
x = rng.standard_normal((B, 1, 5, 5))
y = rng.integers(0, 3, B)
lo, hi = share_bounds(B, rank, size)

# 1. broadcast: ranks seeded differently end with rank 0's parameters and buffers.
world = MPIWorld(bucket_mb=4.0)
world.seed(0)
model = small_model()
for m in model.modules():
    if m._buffers.get("running_mean") is not None:
        m.running_mean[...] = rank + 1.0
before = np.concatenate([p.data.ravel() for p in model.parameters()])
gathered = np.empty((size, before.size))
comm.Allgather(before, gathered)
out["differed_before_broadcast"] = bool(np.abs(gathered - gathered[0]).max() > 0)
world.broadcast(model)
after = np.concatenate([p.data.ravel() for p in model.parameters()] +
                       [b.astype(np.float64).ravel() for b in model.buffers()])
comm.Allgather(after.copy(), gathered2 := np.empty((size, after.size)))
out["equal_after_broadcast"] = bool(np.array_equal(gathered2, np.repeat(after[None], size, 0)))

# 2. sync BN + bucketed gradients (1, 2 and several buckets) in float64 against
#    one process on the whole batch: forward, running stats, every gradient.
reference = small_model()
reference.load_state_dict(model.state_dict())
ref_out = reference(Tensor(x))
F.cross_entropy(ref_out, y).backward()
ref_grads = [p.grad.copy() for p in reference.parameters()]
ref_buffers = [b.copy() for b in reference.buffers()]
param_bytes = [p.data.nbytes for p in model.parameters()]
prefix = np.cumsum(param_bytes)
k = int(np.searchsorted(prefix, prefix[-1] / 2))          # a limit that makes exactly two buckets
two = int(max(prefix[k], prefix[-1] - prefix[k]))
for name, bucket_bytes in (("one", 10 ** 9), ("two", two), ("several", 64)):
    m = small_model()
    m.load_state_dict(model.state_dict())
    synced = convert_sync_batchnorm(m, comm)
    xs = Tensor(x[lo:hi], requires_grad=True)
    o = m(xs)
    F.cross_entropy(o, y[lo:hi]).backward()
    buckets = GradientBuckets(list(m.parameters()), bucket_bytes, comm)
    total = buckets.allreduce(hi - lo)
    out[f"{name}_buckets"] = len(buckets.buckets)
    out[f"{name}_total"] = total
    out[f"{name}_forward_rel"] = rel(o.data, ref_out.data[lo:hi])
    # relative to the largest gradient: the biases before a BatchNorm have a
    # gradient of exactly zero in theory, rounding noise in practice
    scale = max(np.abs(g).max() for g in ref_grads)
    out[f"{name}_grad_rel"] = max(float(np.abs(p.grad - g).max()) / scale
                                  for p, g in zip(m.parameters(), ref_grads))
    out[f"{name}_buffers_rel"] = max(rel(b, r) for b, r in zip(m.buffers(), ref_buffers))
    out["synced_layers"] = synced
    out["state_dict_names_kept"] = list(m.state_dict()) == list(reference.state_dict())

# 3. ShardedLoader: the shares of every batch are disjoint and cover it, in order.
ds = ArrayDataset(np.arange(23, dtype=np.float32).reshape(23, 1, 1, 1), np.arange(23))
base = DataLoader(ds, batch_size=5, shuffle=True, seed=3)
mine = [t.data.tolist() for _, t in ShardedLoader(base, rank, size)]
everyone = comm.allgather(mine)   # test-side bookkeeping only
whole = [t.data.tolist() for _, t in DataLoader(ds, batch_size=5, shuffle=True, seed=3)]
out["shares_cover_batches"] = all(sum((r[b] for r in everyone), []) == whole[b] for b in range(len(whole)))
# ... in training a last batch of fewer samples than ranks is left out; in
# evaluation nothing is: a rank with an empty share skips that batch.
ds21 = ArrayDataset(np.arange(21, dtype=np.float32).reshape(21, 1, 1, 1), np.arange(21))
train21 = ShardedLoader(DataLoader(ds21, batch_size=10), rank, size)
eval21 = ShardedLoader(DataLoader(ds21, batch_size=10), rank, size, training=False)
seen = sorted(sum(comm.allgather([v for _, t in eval21 for v in t.data.tolist()]), []))
out["train_dropped"] = train21.dropped
out["eval_covers_all"] = seen == list(range(21)) and comm.allreduce(eval21.samples) == 21

print(json.dumps(out), flush=True)
