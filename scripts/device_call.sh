#!/usr/bin/env bash
# One call of a GPU session through this workplace's device tool (scripts/device_kit.py says how
# the data travels). Every call runs the same line, naming the part it carries:
#
#     carry [".device_kit/partK"]   command: bash scripts/device_call.sh .device_kit/partK
#
# Each call unpacks its part into $KIT (outside the working tree's copy, kept while the machine
# stays warm: 30 s after a call, so send the next call at once). The first call also runs the
# CUDA tests and times the fills on the GPU; the last prepares the squares, fine-tunes the shipped
# model for about $MINUTES minutes (a cosine schedule sized to the speed of its first PROBE_STEPS),
# exports it and leaves the weight file and the logs in $OUT. Tunables (environment): PROBE_STEPS
# (200; the warm-up lasts as long, at least 200 steps), MINUTES (7: the call's whole budget, start to export), BATCH (32), LR (2e-4), WORKERS (14),
# SEED (20), KIT (/root/kit), DEVICE (cuda; cpu for a dry run here), TRAIN_EXTRA (more train
# options, e.g. "--widths 32,64,128,256,512,512,512": v6 grown at its three deepest levels, 18.3M
# parameters, 210-218 ms for the app's 512x512 fill on the development CPU against v6's 184-195,
# in one process alternating). The call must fit the tool's 10 minutes (MINUTES 8 at most); 7
# leaves the session's 15 device minutes room for the machine's start and the first calls.
# A retried last call (the first one cut off, or its files lost) continues the run it left in
# $KIT (--resume, to the same schedule, within its own MINUTES) and exports; RETRAIN=1 starts
# it afresh. A last call stopped by a signal still exports what its checkpoint holds.
set -euo pipefail
part=${1:?usage: bash scripts/device_call.sh .device_kit/partK}
kit=${KIT:-/root/kit}
out=${OUT:?OUT: the folder whose files come back}
device=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1
start=$SECONDS
python=${PYTHON:-python3}
# the tunables checked before any work (a bad one found after the training would lose it)
[[ ${MINUTES:-7} =~ ^[1-8]$ ]] || { echo "device_call: MINUTES must be a whole number 1-8" >&2; exit 2; }
for name in PROBE_STEPS BATCH; do
  [[ ${!name:-1} =~ ^[1-9][0-9]*$ ]] || { echo "device_call: $name must be a positive whole number" >&2; exit 2; }
done
[[ ${WORKERS:-14} =~ ^[0-9]+$ ]] || { echo "device_call: WORKERS must be a whole number" >&2; exit 2; }
touch "$out/.writable" 2> /dev/null || { echo "device_call: $out is not writable" >&2; exit 2; }
rm -f "$out/.writable"
read -r k n < <("$python" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["part"], m["parts"])' "$part/part.json")

if [ "$k" -lt "$n" ]; then
  "$python" scripts/device_kit.py unpack "$part" --kit "$kit"
else
  "$python" scripts/device_kit.py unpack "$part" --kit "$kit" --prepare
fi

if [ "$k" -eq 1 ] && [ "$device" = cuda ]; then  # a failed check is reported, the data still travels
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt" || true
  # the network's tests, the CUDA ones among them (the app's need PySide6, the JPEG ones jpeglib
  # and simplejpeg, which the machine lacks)
  timeout 150 "$python" -m pytest -o required_plugins= -p no:cacheprovider -q tests/engine/test_inpainter.py \
    tests/engine/test_layers.py tests/engine/test_unet.py tests/engine/test_seams.py tests/engine/test_texture.py \
    > "$out/tests.txt" 2>&1 || echo "device_call: engine tests FAILED"
  tail -n 8 "$out/tests.txt"
  timeout 180 "$python" benchmarks/inference.py --device cuda --quick --model default 2>&1 \
    | tee "$out/inference-cuda.txt" \
    || echo "device_call: inference benchmark FAILED"
fi
[ "$k" -lt "$n" ] && exit 0

run=$kit/run
[ "${RETRAIN:-0}" = 1 ] && rm -rf "$run"
exported=  # set once the call's own export has been tried: the exit never tries it twice
package() {  # a file over 16 MiB does not come back (a widened model's is 37 MB): pieces of 15 MiB,
  # which `cat device.safetensors.part* > device.safetensors` joins here (its sha256 is in $OUT)
  sha256sum "$out/device.safetensors" | sed 's|  .*/|  |' > "$out/device.sha256"
  if [ "$(stat -c %s "$out/device.safetensors")" -gt $(( 15 * 1024 * 1024 )) ]; then
    split -b 15M -d "$out/device.safetensors" "$out/device.safetensors.part"
    rm "$out/device.safetensors"
  fi
}
export_run() {  # the weight file of what the run's checkpoint holds, packaged
  exported=tried
  "$python" -m trainer export "$run" "$out/device.safetensors" --half --texture 0.5 --name "retoucher-cub-small-gpu-s${SEED:-20}"
  package
}
on_exit() {  # the logs always; the weight file packaged, or exported from the checkpoint when the
  # call ended before its own export was tried
  local status=$?
  cp "$run/train.log" "$run/log.jsonl" "$run/config.json" "$out/" 2>/dev/null || true
  if [ -f "$out/device.safetensors" ] && [ ! -f "$out/device.sha256" ]; then
    package || true  # a signal between the export and its packaging
  elif [ "$status" -ne 0 ] && [ -z "$exported" ] && [ -f "$run/ckpt.pt" ]; then
    echo "device_call: stopped (status $status): exporting what the checkpoint holds"
    export_run || true
  fi
}
trap on_exit EXIT
trap 'exit 143' TERM  # the trainer checkpoints on the signal too; then on_exit exports
trap 'exit 130' INT
probe=${PROBE_STEPS:-200}
warmup=$(( probe > 200 ? probe : 200 ))  # the probe ends within the warm-up (see 1. below)
if [ -f "$run/warmup" ] && [ -f "$run/ckpt.pt" ]; then
  warmup=$(cat "$run/warmup")  # a retried last call: the run's own warm-up, whatever PROBE_STEPS says
fi
recipe=(
  --data "$kit/data" --out "$run" --mask-dir "$kit/masks"
  --init resources/weights/default.safetensors --phase finetune --freeze-bn all --loss l1
  --native-share 0.5 --masks center:0.1,folder:0.3,rects:0.05,brush:0.25,scratches:0.1,blobs:0.2
  --lr "${LR:-2e-4}" --schedule cosine --warmup-steps "$warmup" --ema 0.999 --batch-size "${BATCH:-32}"
  --seed "${SEED:-20}" --workers "${WORKERS:-14}" --device "$device"
  --val-every 1000 --val-images 32 --ckpt-every 1000 --log-every 50 --no-progress
)
# shellcheck disable=SC2206
extra=(${TRAIN_EXTRA:-})
if [ -f "$run/steps" ] && [ -f "$run/ckpt.pt" ]; then
  steps=$(cat "$run/steps")  # a retried last call: the run it left, to the same schedule
  echo "device_call: continuing the run in $run (schedule of $steps steps)"
else
  rm -rf "$run"
  # 1. the warm-up's steps to measure the speed (a cosine's length may change on a resume
  #    until its warm-up ends: the resume below sets it, the rates so far are the same)
  # (exit status 3: stopped before the schedule's end, as asked)
  "$python" -m trainer train "${recipe[@]}" "${extra[@]}" --steps 1000000 --stop-after "$probe" || [ $? -eq 3 ]
  # 2. the schedule sized to end inside the trainer's own time limit below (it stops 2 steps and
  #    30 s early) with the pauses for validation and checkpoints
  probe_left=$(( ${MINUTES:-7} * 60 - (SECONDS - start) - 60 ))
  steps=$("$python" - "$run/log.jsonl" "$probe_left" "${BATCH:-32}" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if '"images_per_s"' in line]
rate = sum(r["images_per_s"] for r in rows[-3:]) / len(rows[-3:]) / int(sys.argv[3])  # steps/s
print(rows[-1]["step"] + max(0, int(rate * (int(sys.argv[2]) - 40) * 0.9)))
EOF
  )
  echo "$steps" > "$run/steps"
  echo "$warmup" > "$run/warmup"
fi
# the rest of the budget, less a minute for the export and the copies
left=$(( ${MINUTES:-7} * 60 - (SECONDS - start) - 60 ))
echo "device_call: $left s left, schedule of $steps steps"
if [ "$left" -gt 60 ]; then
  "$python" -m trainer train "${recipe[@]}" "${extra[@]}" --steps "$steps" --resume \
    --time-limit "$(awk "BEGIN{print $left / 60}")" || [ $? -eq 3 ]
fi
export_run
echo "device_call: done in $(( SECONDS - start )) s"
