#!/usr/bin/env bash
# Build the one-folder application dist/Retoucher/ (executable dist/Retoucher/Retoucher) with
# PyInstaller, from a separate build venv that holds a CPU-only torch and only what the app needs.
#
#   bash packaging/build.sh [--venv-only] [--no-check] [--dist DIR] [--work DIR] [--resources DIR]
#
#   --venv-only      create/update the build venv and stop (exit 3 when packages can't be installed)
#   --no-check       don't run the bundle's --version / --self-test after building
#   --dist DIR       where Retoucher/ is written (default: dist)
#   --work DIR       PyInstaller's work folder (default: build/pyinstaller)
#   --resources DIR  the resources/ folder to bundle (default: resources); the bundle takes
#                    weights/default.safetensors, weights/damage.safetensors, sample.jpg
#                    and everything else in it
#
# Environment:
#   PYTHON                  the interpreter for the build venv (default: python3.11, else python3)
#   RETOUCHER_PACKAGE_VENV  the build venv (default: build/package-venv); reused while its
#                           requirements are unchanged
#   TORCH_SPEC              which torch to bundle (default: torch==2.13.0, a CPU build where a
#                           CPU wheel is on the pip search path; see packaging/README.md for CUDA)
#   TORCH_INDEX_URL         an index to take torch from (e.g. PyTorch's cpu or cu128 wheel index)
#
# Exit codes: 0 built (and checked), 1 build or check failed, 2 usage, 3 build tools not installable.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

VENV_ONLY=0
CHECK=1
DIST="$ROOT/dist"
WORK="$ROOT/build/pyinstaller"
RESOURCES="$ROOT/resources"
while [ $# -gt 0 ]; do
    case "$1" in
        --venv-only) VENV_ONLY=1 ;;
        --no-check) CHECK=0 ;;
        --dist) DIST="$2"; shift ;;
        --work) WORK="$2"; shift ;;
        --resources) RESOURCES="$2"; shift ;;
        -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
VENV="${RETOUCHER_PACKAGE_VENV:-$ROOT/build/package-venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-}"
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null
then
    echo "build.sh: no usable Python 3.11+ with venv (PYTHON=${PYTHON:-<none>});" \
        "set PYTHON=/path/to/python3.11" >&2
    exit 3
fi
case "$OSTYPE" in
    msys*|cygwin*|win32*) BIN="$VENV/Scripts"; EXE="Retoucher.exe" ;;
    *) BIN="$VENV/bin"; EXE="Retoucher" ;;
esac

log() { printf '[package] %s\n' "$*"; }
started=$(date +%s)

# --- 1. the build venv ---------------------------------------------------------------------------
stamp_of() {
    { "$PYTHON" -c 'import sys; print(sys.version)'; echo "$TORCH_SPEC $TORCH_INDEX_URL";
      cat "$ROOT/packaging/requirements.txt"; } | cksum | cut -d' ' -f1
}
STAMP="$(stamp_of)"
if [ -f "$VENV/.retoucher-stamp" ] && [ "$(cat "$VENV/.retoucher-stamp")" = "$STAMP" ]; then
    log "build venv up to date: $VENV"
else
    log "creating the build venv $VENV with $PYTHON ($("$PYTHON" -V 2>&1))"
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        echo "build.sh: could not create a venv with $PYTHON" >&2
        exit 3
    fi
    pip_install() { "$BIN/python" -m pip install --disable-pip-version-check --quiet "$@"; }
    if [ -n "$TORCH_INDEX_URL" ]; then
        torch_args=(--index-url "$TORCH_INDEX_URL" "$TORCH_SPEC")
    else
        torch_args=("$TORCH_SPEC")
    fi
    # torch first and alone, so that nothing later can swap it for another (CUDA) build.
    if ! pip_install --upgrade pip \
        || ! pip_install "${torch_args[@]}" \
        || ! pip_install -r "$ROOT/packaging/requirements.txt" "$(
                "$BIN/python" -c 'import torch; print("torch==" + torch.__version__)')"; then
        echo "build.sh: could not install the build tools into $VENV (see pip's message above)" >&2
        rm -rf "$VENV"
        exit 3
    fi
    echo "$STAMP" > "$VENV/.retoucher-stamp"
    log "build venv ready: torch $("$BIN/python" -c 'import torch; print(torch.__version__)')," \
        "PyInstaller $("$BIN/python" -c 'import PyInstaller; print(PyInstaller.__version__)')"
fi
if [ "$VENV_ONLY" = 1 ]; then
    exit 0
fi

# The project itself, without its dependencies (torchvision and the trainer's are not wanted).
# Its metadata gives `Retoucher --version` the version; setuptools' scratch copies in build/ are
# removed first so that a module deleted from the source can't come back from a stale copy.
log "installing the project (no dependencies)"
rm -rf "$ROOT/build/lib" "$ROOT"/build/bdist.*
"$BIN/python" -m pip install --disable-pip-version-check --quiet --no-deps --no-build-isolation \
    --force-reinstall "$ROOT"

# --- 2. PyInstaller ------------------------------------------------------------------------------
# PyInstaller bundles the system libraries of Qt's xcb plugin (libxcb-cursor, libxcb-icccm, ...)
# from this machine; those it lacks, the bundle can't carry, and users must have them installed.
if [ "$(uname -s)" = Linux ]; then
    missing_xcb="$("$BIN/python" -c 'from retoucher import platform_check as pc
plugin = pc.xcb_plugin({})
print(" ".join((pc.missing_libraries(plugin) or []) if plugin else []))' 2>/dev/null || true)"
    [ -z "$missing_xcb" ] || log "WARNING: this machine lacks $missing_xcb (needed by Qt's xcb plugin):" \
        "the bundle won't carry them; on a desktop without them the app names them and exits"
fi
[ -f "$RESOURCES/weights/default.safetensors" ] \
    || log "WARNING: $RESOURCES/weights/default.safetensors is missing: the bundle will have no model"
[ -f "$RESOURCES/weights/damage.safetensors" ] \
    || log "WARNING: $RESOURCES/weights/damage.safetensors is missing: the bundle will have no damage detector"
[ -f "$RESOURCES/sample.jpg" ] \
    || log "WARNING: $RESOURCES/sample.jpg is missing: the bundle will have no sample photo"
log "running PyInstaller -> $DIST/Retoucher"
RETOUCHER_PACKAGE_RESOURCES="$(cd "$RESOURCES" && pwd)" RETOUCHER_PACKAGE_ROOT="$ROOT" \
    "$BIN/python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" "$ROOT/packaging/retoucher.spec"

APP="$DIST/Retoucher/$EXE"
[ -x "$APP" ] || { echo "build.sh: PyInstaller did not produce $APP" >&2; exit 1; }
elapsed=$(( $(date +%s) - started ))
log "built $APP in ${elapsed}s; size $(du -sh "$DIST/Retoucher" | cut -f1)"

# --- 3. a check, from the bundle alone ------------------------------------------------------------
if [ "$CHECK" = 1 ]; then
    clean_env=(env -i "PATH=/usr/bin:/bin" "HOME=${HOME:-/tmp}" QT_QPA_PLATFORM=offscreen)
    "${clean_env[@]}" "$APP" --version
    if [ -f "$RESOURCES/weights/default.safetensors" ] && [ -f "$RESOURCES/weights/damage.safetensors" ]; then
        "${clean_env[@]}" "$APP" --self-test
    else
        log "no model or no damage detector bundled: skipping --self-test"
    fi
fi
