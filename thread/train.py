"""Train `thread-tiny` from scratch: a BPE tokenizer and a small Llama on live-view windows.

The tokenizer's pre-tokenizer cuts the text into the JSON scaffolding runs that lie between two
places where a prune may start or end, and single characters elsewhere; BPE learns each run as
one token (a task's whole tool-call head is one token), and no token crosses a pruned span's
edge. Examples are the `window` rule set's live views (thread.tasks.samples); the loss covers
model-written tokens only.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import string
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from thread.tasks import chain, samples
from thread.tasks.views import View

log = logging.getLogger(__name__)

# Pretokens: the scaffolding runs that sit between two edges where the runtime may cut (a task's
# start, the separator after a finished task, a `subtasks` field and its separator, the point
# where a tool result goes in) become whole pretokens, which BPE then learns as single tokens;
# every other character stays on its own, so digits and keys are copied one character a token.
SCAFFOLD = [
    '{"reasoning": [',
    '{"thought": "',
    '", "tooluse": {"tool_name": "lookup", "parameters": {"key": "',
    '", "tooluse": {"tool_name": "calculator", "parameters": {"expression": "',
    '{"tooluse": {"tool_name": "calculator", "parameters": {"expression": "',
    ', "tool_result": "',
    ', "tool_result": ',
    '}, "conclusion": "',
    '", "conclusion": "',
    '"conclusion": "',
    '"subtasks": [',
    '], "answer": "',
    '"}',
    '", ',
    '], ',
    ', ',
    ' left',
    'follow ',
    ' hops from ',
]
PRETOKEN_PATTERN = "|".join(re.escape(p) for p in SCAFFOLD) + r"|[\s\S]"
SPECIAL_TOKENS = ["<pad>", "<unk>"]


@dataclass
class TrainConfig:
    out: str = "thread/assets/thread-tiny"
    minutes: float = 57.0
    steps: int | None = None
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int = 512
    context_window: int = 1024
    tokens_per_step: int = 3072
    lr: float = 1.5e-3
    warmup: int = 30
    arith_share: float = 0.4
    seed: int = 0
    threads: int = 2
    bf16: bool = True  # autocast matmuls to bfloat16 (weights and optimizer stay float32)
    checkpoint_minutes: float = 5.0
    tokenizer_texts: int = 3000
    init: str | None = None  # a saved thread-tiny folder to continue from (its tokenizer too)


def build_tokenizer(seed: int = 0, num_texts: int = 3000):
    """A BPE tokenizer trained on gold segments of both families."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(PRETOKEN_PATTERN), behavior="isolated")
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])  # llguidance reads it
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(num_texts // 2):
        for view in (samples.chain_window, samples.arith_window):
            texts.append(_view_text(view(rng, _char_ids)))
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=list(string.printable),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def _char_ids(text: str) -> list[tuple[int, int, int]]:
    return [(ord(c), i, i + 1) for i, c in enumerate(text)]


def _view_text(view: View) -> str:
    return "".join(map(chr, view.ids))


def encoder_for(tokenizer) -> Callable[[str], list[tuple[int, int, int]]]:
    """encode(text) -> [(id, start, end)] for a `tokenizers.Tokenizer` or a HF fast tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)

    def encode(text: str) -> list[tuple[int, int, int]]:
        enc = backend.encode(text, add_special_tokens=False)
        return [(i, s, e) for i, (s, e) in zip(enc.ids, enc.offsets)]

    return encode


def save_tokenizer(tok, out: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>")
    fast.save_pretrained(str(out))


def thread_json(cfg: TrainConfig) -> dict:
    return {
        "prompt_template": samples.PROMPT_TEMPLATE,
        "format": "thread2",
        "rules": "window",
        "tools": ["calculator", "lookup"],
        "context_window": cfg.context_window,
        # Wide enough for every trained size (an arith group of 40 operations takes up to 4 steps
        # an operation, nesting 20 deep; a chain block holds 10 hops); the top-level list is
        # unbounded, since a chain has one block per ten hops and an expression one top-level
        # step per token.
        "bounds": {"max_depth": 24, "max_items": 160, "max_field_chars": 200},
        "families": {
            "arith": {
                "task_text": "an expression, e.g. ((17+25)*3)-(48-19)",
                "format": "tape",  # read through `lookup` over arith.tape_table(expression)
                "max_ops_trained": samples.ARITH_MAX_OPS,
            },
            "chain": {
                "task_text": "follow N hops from KEY",
                "max_hops_trained": samples.CHAIN_MAX_HOPS,
                "key_lengths_trained": list(chain.KEY_LENGTHS),
            },
        },
    }


def make_model(cfg: TrainConfig, vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        max_position_embeddings=cfg.context_window,
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
    )
    return LlamaForCausalLM(config)


class BatchSampler:
    """Batches of one family's windows, of similar lengths so that little of a batch is padding.

    Each family keeps a pool of fresh windows; a batch starts at a random window of the pool and
    takes its neighbours by length until the padded batch holds `tokens_per_step` tokens.
    """

    POOL = 256

    def __init__(self, rng: random.Random, encode, cfg: TrainConfig) -> None:
        self.rng, self.encode, self.cfg = rng, encode, cfg
        self.pools: dict[str, list[View]] = {"arith": [], "chain": []}

    def _fill(self, family: str) -> list[View]:
        draw = samples.arith_window if family == "arith" else samples.chain_window
        pool = self.pools[family]
        while len(pool) < self.POOL:
            v = draw(self.rng, self.encode)
            if len(v.ids) <= self.cfg.context_window:
                pool.append(v)
        pool.sort(key=lambda v: len(v.ids))
        return pool

    def __call__(self):
        import torch

        family = "arith" if self.rng.random() < self.cfg.arith_share else "chain"
        pool = self._fill(family)
        lo = hi = self.rng.randrange(len(pool))
        hi += 1
        while True:  # grow [lo, hi) towards the side whose next window is closer in length
            longest = len(pool[hi - 1].ids)
            if lo > 0 and (hi == len(pool) or self.rng.random() < 0.5):
                cand_lo, cand_hi = lo - 1, hi
            elif hi < len(pool):
                cand_lo, cand_hi = lo, hi + 1
            else:
                break
            if len(pool[cand_hi - 1].ids) * (cand_hi - cand_lo) > self.cfg.tokens_per_step:
                break
            lo, hi = cand_lo, cand_hi
        views = pool[lo:hi]
        del pool[lo:hi]
        longest = len(views[-1].ids)
        ids = torch.zeros(len(views), longest, dtype=torch.long)
        labels = torch.full((len(views), longest), -100, dtype=torch.long)
        mask = torch.zeros(len(views), longest, dtype=torch.long)
        for b, v in enumerate(views):
            row = v.ids
            ids[b, : len(row)] = torch.tensor(row)
            mask[b, : len(row)] = 1
            for p, (t, src) in enumerate(v.new, start=len(v.context)):
                if src == "model":
                    labels[b, p] = t
        return ids, mask, labels


def _start(cfg: TrainConfig):
    """(tokenizer, model): fresh ones, or the ones saved in `cfg.init` to train further."""
    if cfg.init is None:
        tok = build_tokenizer(cfg.seed, cfg.tokenizer_texts)
        return tok, make_model(cfg, tok.get_vocab_size())
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM

    init = Path(cfg.init)
    model = LlamaForCausalLM.from_pretrained(str(init))
    if model.config.max_position_embeddings != cfg.context_window:
        raise ValueError(
            f"--init {init}: its context window is {model.config.max_position_embeddings}, "
            f"this run's is {cfg.context_window}"
        )
    return Tokenizer.from_file(str(init / "tokenizer.json")), model


def save(model, tok, cfg: TrainConfig, out: Path, stats: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    save_tokenizer(tok, out)
    (out / "thread.json").write_text(json.dumps(thread_json(cfg), indent=2) + "\n")
    (out / "training.json").write_text(json.dumps({"config": asdict(cfg), **stats}, indent=2) + "\n")


def train(cfg: TrainConfig, on_log: Callable[[dict], None] | None = None) -> dict:
    """Train for `cfg.minutes` (or `cfg.steps`), checkpointing into `cfg.out`; returns stats."""
    import torch

    # 1) tokenizer, model, optimizer
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    tok, model = _start(cfg)
    encode = encoder_for(tok)
    next_batch = BatchSampler(rng, encode, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.01)
    budget_s = cfg.minutes * 60
    out = Path(cfg.out)
    stats = {"params": sum(p.numel() for p in model.parameters()), "steps": 0, "tokens": 0}
    if cfg.init and (Path(cfg.init) / "training.json").is_file():
        stats["continues"] = json.loads((Path(cfg.init) / "training.json").read_text())
    log.info("model with %d parameters, vocab %d", stats["params"], tok.get_vocab_size())

    # 2) loop: learning rate by elapsed time, so a time budget ends on the schedule's tail
    t0 = last_ckpt = time.monotonic()
    cpu0 = time.process_time()
    step = 0
    while True:
        elapsed = time.monotonic() - t0
        if (cfg.steps is not None and step >= cfg.steps) or (cfg.steps is None and elapsed >= budget_s):
            break
        frac = step / cfg.steps if cfg.steps else elapsed / budget_s
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        ids, mask, labels = next_batch()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        stats["steps"] = step
        stats["tokens"] += int(mask.sum())

        # 3) logging and checkpoints
        if step % 20 == 0:
            row = {"step": step, "loss": loss.item(), "lr": lr, "elapsed_s": elapsed, "tokens": stats["tokens"]}
            log.debug("%s", row)
            if on_log is not None:
                on_log(row)
        if time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60:
            stats["train_seconds"] = time.monotonic() - t0
            stats["cpu_seconds"] = time.process_time() - cpu0
            save(model, tok, cfg, out, stats)
            last_ckpt = time.monotonic()

    stats["train_seconds"] = time.monotonic() - t0
    stats["cpu_seconds"] = time.process_time() - cpu0
    save(model, tok, cfg, out, stats)
    return stats
