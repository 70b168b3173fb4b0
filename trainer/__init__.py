"""Training for Retoucher's partial-convolution U-Net: ``retoucher-train prepare|train|evaluate|export|soup``.

Modules, one job each: ``cub`` (CUB metadata, the bird-square crop), ``prepare`` (the prepare
command), ``splits``, ``manifest``, ``masks``, ``data`` (images, samples, resumable order),
``vgg`` and ``losses`` (the paper's loss), ``metrics`` and ``inference`` (hole L1, PSNR, SSIM of
composites), ``config``, ``distributed``, and for training: ``loop`` (the loop, top to bottom),
``step`` (one optimisation step, loss, optimiser), ``checkpoint`` (save, resume, --init), ``widen``
(--init grown to wider levels), ``ema``,
``validation`` (fixed validation set, metrics, image grids), ``runlog`` (console, logs,
TensorBoard); ``evaluate`` (against OpenCV), ``export`` (engine weight files), ``soup`` (weight
files averaged from several models). Imports engine, never Qt.
"""
