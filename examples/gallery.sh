#!/usr/bin/env bash
# The README's pictures, made by cnnlab itself from a trained run:
#   bash examples/gallery.sh [RUN] [OUT]     (defaults: runs/fm-bn_cnn docs/img)
# RUN is a Fashion-MNIST run folder, e.g. from
#   python3 -m cnnlab train --dataset fashion-mnist --model bn_cnn --augment flip-crop ... --out runs/fm-bn_cnn
set -euo pipefail
RUN="${1:-runs/fm-bn_cnn}"
OUT="${2:-docs/img}"
VIZ=(python3 -m cnnlab viz)
N=0   # test image 0 of Fashion-MNIST: an ankle boot

"${VIZ[@]}" kernels --photo camera --max-side 128 --out "$OUT"
"${VIZ[@]}" filters --checkpoint "$RUN" --out "$OUT"
"${VIZ[@]}" activations --checkpoint "$RUN" --index "$N" --layer features.2 --out "$OUT"
"${VIZ[@]}" occlusion --checkpoint "$RUN" --index "$N" --size 6 --stride 2 --out "$OUT"
"${VIZ[@]}" guided --checkpoint "$RUN" --index "$N" --out "$OUT"
"${VIZ[@]}" top-k --checkpoint "$RUN" --layer features.9 --channel 5 --k 8 --out "$OUT"
"${VIZ[@]}" tsne --checkpoint "$RUN" --max-images 900 --thumb 16 --out "$OUT"
"${VIZ[@]}" fgsm --checkpoint "$RUN" --index "$N" --eps 0.05 --sweep 0,0.01,0.02,0.05,0.1 --out "$OUT"
"${VIZ[@]}" confusion --checkpoint "$RUN" --out "$OUT"
python3 -m cnnlab report "$RUN" --out "$OUT/report.html"
python3 scripts/screenshot_report.py "$OUT/report.html" "$OUT/report.png" --width 1280 --height 1400
