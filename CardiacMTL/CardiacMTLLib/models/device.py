"""The device and the arithmetic precision the networks run in, chosen at the edge and passed in explicitly."""

from __future__ import annotations

from pathlib import Path

from CardiacMTLLib.errors import CardiacInputError


def resolve_device(name: str = "auto"):
    """``auto`` takes CUDA when torch sees a GPU, else the CPU; ``cuda`` without a GPU is an error."""
    import torch

    if isinstance(name, torch.device):
        return name
    if name not in ("auto", "cpu", "cuda"):
        raise CardiacInputError(f"device must be auto, cpu or cuda, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CardiacInputError(
            "the device cuda was asked for, but torch sees no CUDA GPU on this machine (choose auto or cpu)"
        )
    return torch.device(name)


def describe_device(device, precision: str = "fp32") -> str:
    """What runs inference, in words a user can check (GPU name and memory, or the CPU threads), and the
    arithmetic when it is not plain fp32."""
    import torch

    extra = "" if precision == "fp32" else f", {precision}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda: {props.name} ({props.total_memory / 2**30:.0f} GiB{extra})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''}{extra})"


PRECISIONS = ("auto", "fp32", "bf16", "int8")


# the instruction sets that decide how fast the network runs on a CPU (fp32, bf16, int8)
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni", "amx_int8")


def _cpu_model_and_flags() -> tuple[str, set[str]] | None:
    """The CPU's model name and instruction-set flags from ``/proc/cpuinfo`` (``None`` where it cannot be
    read: not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", "?"), set(fields.get("flags", "").split())


def cpu_description() -> str:
    """This machine's CPU model and which of :data:`CPU_FEATURES` it has, for benchmark headers (the
    same code runs at very different speeds on an AVX2-only and an AMX CPU)."""
    cpu = _cpu_model_and_flags()
    if cpu is None:
        return "CPU model unknown"
    model, flags = cpu
    present = [f for f in CPU_FEATURES if f in flags]
    return f"{model} ({', '.join(present) or 'none of ' + ', '.join(CPU_FEATURES)})"


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
    cpu = _cpu_model_and_flags()
    return cpu is not None and bool({"avx512_bf16", "amx_bf16"} & cpu[1])


def resolve_precision(precision: str, device, quantised: bool = False) -> str:
    """``auto`` runs the network in bfloat16 on CPUs that compute it natively (about twice as fast there,
    with the same Dice on the ACDC validation volumes: model card), else in fp32.

    ``int8`` runs the model folder's network quantised for OpenVINO (``quantised``: the folder carries it),
    on the CPU only: about 1.7 times the fp32 network's speed on the 2-core machine and the same Dice on
    the ACDC validation patients to 0.0011, but indices of the generated demo cine up to 3.4 % away from
    fp32's (apical wall thickness) and its Dice against the exact labels 0.002-0.003 lower, so ``auto``
    does not choose it; it is asked for where speed counts more (a large cohort). Asked for where there
    is no quantised network, it is an error."""
    if precision not in PRECISIONS:
        raise CardiacInputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "int8" and not (quantised and device.type == "cpu"):
        raise CardiacInputError(
            "--precision int8 runs on the CPU, with OpenVINO, from a model folder that carries its network "
            "quantised to int8 (network-int8.xml: cardiac-train export-openvino --int8-data)"
        )
    if precision == "auto":
        return "bf16" if device.type == "cpu" and cpu_supports_bf16() else "fp32"
    return precision
