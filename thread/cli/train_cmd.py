"""`thread train`: train the bundled model's tokenizer and weights from scratch on this CPU."""

from __future__ import annotations

import logging

import typer
from rich.console import Console

from thread.cli import app

console = Console()


@app.command()
def train(
    out: str = typer.Option("thread/assets/thread-tiny", help="Folder for weights, tokenizer, thread.json."),
    minutes: float = typer.Option(57.0, help="Wall-clock budget; the learning rate decays over it."),
    steps: int | None = typer.Option(None, help="Stop after this many steps instead (overrides --minutes)."),
    hidden: int = typer.Option(256, help="Hidden size."),
    layers: int = typer.Option(4, help="Decoder layers."),
    tokens_per_step: int = typer.Option(3072, help="Padded tokens per batch."),
    threads: int = typer.Option(2, help="torch CPU threads."),
    seed: int = typer.Option(0, help="Seed for the tokenizer corpus, the weights and the data."),
    init: str | None = typer.Option(None, help="A saved model folder to continue training from."),
    lr: float = typer.Option(1.5e-3, help="Peak learning rate."),
    arith_share: float = typer.Option(0.4, help="Share of batches drawn from the arith family."),
    bf16: bool = typer.Option(True, "--bf16/--fp32", help="Matmuls in bfloat16 (weights stay float32)."),
) -> None:
    """Train thread-tiny on live views of the arith and chain families (window rule set)."""
    from thread.train import TrainConfig
    from thread.train import train as run

    if minutes <= 0 or (steps is not None and steps <= 0):
        raise typer.BadParameter(f"--minutes {minutes} / --steps {steps}: must be positive")
    logging.getLogger("thread.train").setLevel(logging.INFO)
    cfg = TrainConfig(
        out=out, minutes=minutes, steps=steps, hidden=hidden, layers=layers,
        tokens_per_step=tokens_per_step, threads=threads, seed=seed,
        init=init, lr=lr, arith_share=arith_share, bf16=bf16,
    )

    def on_log(row: dict) -> None:
        console.print(
            f"step {row['step']:6d}  loss {row['loss']:.4f}  lr {row['lr']:.2e}  "
            f"{row['elapsed_s'] / 60:5.1f} min  {row['tokens'] / max(row['elapsed_s'], 1e-9):,.0f} tok/s"
        )

    stats = run(cfg, on_log)
    console.print(
        f"[bold]saved[/] {out}: {stats['params']:,} parameters, {stats['steps']} steps, "
        f"{stats['tokens']:,} tokens, {stats['train_seconds'] / 60:.1f} min"
    )
