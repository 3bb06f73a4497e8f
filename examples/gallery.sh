#!/usr/bin/env bash
# A gallery of pictures made by cnnlab itself from any run `cnnlab train` wrote:
#   bash examples/gallery.sh RUN [OUT]     (OUT default: gallery/<RUN's folder name>)
# The README's pictures are `bash examples/gallery.sh runs/fm-bn_cnn docs/img`, RUN from
#   python3 -m cnnlab train --dataset fashion-mnist --model bn_cnn --augment flip-crop ... --out runs/fm-bn_cnn
# The layers come from the model: the activation after its first convolution
# (activation maps) and after its last one (top-k).
set -euo pipefail
RUN="${1:?usage: bash examples/gallery.sh RUN [OUT]}"
OUT="${2:-gallery/$(basename "$RUN")}"
VIZ=(python3 -m cnnlab viz)
N=0   # test image 0 (of Fashion-MNIST: an ankle boot)
read -r FIRST LAST < <(python3 - "$RUN" <<'PY'
import sys
from cnnlab.training import load_for_evaluation
from cnnlab.viz.commands.context import activation_after, last_conv, leaf_layers
model, _ = load_for_evaluation(sys.argv[1])
convs = leaf_layers(model, ("Conv2d",))
print(activation_after(model, convs[0]), activation_after(model, last_conv(model)))
PY
)

"${VIZ[@]}" kernels --photo camera --max-side 128 --out "$OUT"
"${VIZ[@]}" filters --checkpoint "$RUN" --out "$OUT"
"${VIZ[@]}" activations --checkpoint "$RUN" --index "$N" --layer "$FIRST" --out "$OUT"
"${VIZ[@]}" occlusion --checkpoint "$RUN" --index "$N" --size 6 --stride 2 --out "$OUT"
"${VIZ[@]}" guided --checkpoint "$RUN" --index "$N" --out "$OUT"
"${VIZ[@]}" top-k --checkpoint "$RUN" --layer "$LAST" --channel 5 --k 8 --out "$OUT"
"${VIZ[@]}" tsne --checkpoint "$RUN" --max-images 900 --thumb 16 --out "$OUT"
"${VIZ[@]}" fgsm --checkpoint "$RUN" --index "$N" --eps 0.05 --sweep 0,0.01,0.02,0.05,0.1 --out "$OUT"
"${VIZ[@]}" confusion --checkpoint "$RUN" --out "$OUT"
python3 -m cnnlab report "$RUN" --out "$OUT/report.html"
python3 scripts/screenshot_report.py "$OUT/report.html" "$OUT/report.png" --width 1280 --height 1400
