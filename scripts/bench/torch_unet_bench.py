"""PyTorch counterpart of `slicewise-train bench --preset small` (needs torch==2.9.0 in its own venv:
python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.9.0; ~6.8 GB, not part of
the test setup). usage: OMP_NUM_THREADS=1 python torch_unet_bench.py BASE SIZE BATCH STEPS [nobn]
Prints the step and its phases (forward, backward, optimiser; forward alone under no_grad), as
`slicewise-train bench [--no-batchnorm]` does."""
# The same U-Net (small preset: 16 filters, depth 4, BatchNorm, transposed conv) in PyTorch, same
# loss (BCE+Dice) and optimiser (Adam), timing full training steps on CPU.
import json, sys, time, os
import torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
base, size, batch, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
BN = not (len(sys.argv) > 5 and sys.argv[5] == "nobn")
def block(i, o):
    norm = (lambda: nn.BatchNorm2d(o)) if BN else (lambda: nn.Identity())
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=not BN), norm(), nn.ReLU(),
                         nn.Conv2d(o, o, 3, padding=1, bias=not BN), norm(), nn.ReLU())
class UNet(nn.Module):
    def __init__(s, f=16, d=4):
        super().__init__()
        s.down = nn.ModuleList([block(1 if i == 0 else f << (i - 1), f << i) for i in range(d)])
        s.bott = block(f << (d - 1), f << d)
        s.ups = nn.ModuleList([nn.ConvTranspose2d(f << (l + 1), f << l, 2, 2) for l in reversed(range(d))])
        s.blocks = nn.ModuleList([block(2 * (f << l), f << l) for l in reversed(range(d))])
        s.head = nn.Conv2d(f, 1, 1)
    def forward(s, x):
        sk = []
        for b in s.down:
            x = b(x); sk.append(x); x = F.max_pool2d(x, 2)
        x = s.bott(x)
        for u, b in zip(s.ups, s.blocks):
            x = b(torch.cat([sk.pop(), u(x)], 1))
        return s.head(x)
torch.manual_seed(0)
m = UNet(base); opt = torch.optim.Adam(m.parameters(), 1e-3)
x = torch.randn(batch, 1, size, size); y = (torch.rand(batch, 1, size, size) < 0.1).float()
ts, fw, bw, op = [], [], [], []
for i in range(steps + 2):
    t = time.perf_counter()
    lg = m(x); p = torch.sigmoid(lg)
    l = F.binary_cross_entropy_with_logits(lg, y) + 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
    l.item(); t1 = time.perf_counter()
    opt.zero_grad(); l.backward(); t2 = time.perf_counter()
    opt.step()
    if i >= 2:
        e = time.perf_counter(); ts.append(e - t); fw.append(t1 - t); bw.append(t2 - t1); op.append(e - t2)
inf = []
m.eval()
with torch.no_grad():
    for i in range(steps):
        t = time.perf_counter(); m(x).sum().item(); inf.append(time.perf_counter() - t)
mean = lambda v: sum(v) / len(v)
ts.sort()
print(json.dumps({"torch": torch.__version__, "base": base, "size": size, "batch": batch, "batch_norm": BN,
                  "mean_step_s": mean(ts), "median_step_s": ts[len(ts) // 2], "mean_forward_s": mean(fw),
                  "mean_backward_s": mean(bw), "mean_optimizer_s": mean(op), "mean_inference_forward_s": mean(inf),
                  "threads": torch.get_num_threads()}))
