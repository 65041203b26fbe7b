"""`fer-edge train` and `fer-edge eval`."""

from __future__ import annotations

import json

import click

from ..bundle import INTERPOLATIONS, TTA_MODES
from ..training.recipes import PRECISIONS


@click.command()
@click.option("--recipe", "recipe_name", required=True, help="Built-in recipe name or a recipe .toml path.")
@click.option("--data", "data_path", required=True, type=click.Path(), help="Dataset file or folder.")
@click.option("--out", required=True, type=click.Path(), help="Run folder to create (becomes a bundle).")
@click.option("--kind", default=None, help="Dataset reader (fer2013, ferplus, jaffe, ckplus48, imagefolder); auto-detected if omitted.")
@click.option("--protocol", default=None, help="One of the recipe's protocols (e.g. paper, loso, official).")
@click.option("--epochs", type=int, default=None, help="Override the recipe's total epochs.")
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None, help="Override the learning rate (all stages).")
@click.option("--seed", type=int, default=None)
@click.option("--weights", default=None, help="Backbone weights: a local file, 'imagenet' or 'none' (overrides the recipe).")
@click.option("--limit", type=int, default=None, help="Cap each split to ~N samples (quick runs).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="Training compute precision (overrides the recipe's [train] precision); artifacts stay float32.")
@click.option("--teacher", "teachers", multiple=True, type=click.Path(),
              help="A finished run to distill from (repeat for an ensemble); sets the recipe's [distill] teachers.")
@click.option("--strategy", type=click.Choice(["auto", "none", "mirrored", "multiworker"]), default=None,
              help="tf.distribute strategy (default: the recipe's [train] strategy, else auto = MirroredStrategy "
                   "when more than one GPU is visible).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train(recipe_name, data_path, out, kind, protocol, epochs, batch_size, lr, seed, weights, limit, precision, teachers,
          strategy, resume, overwrite, as_json):
    """Train a recipe into a run folder (model.keras + manifest.json + metrics, plots, report)."""
    from ..errors import require_extras

    # Before the recipe is read (its schema needs pydantic): one line naming every missing module.
    require_extras(["train"], "fer-edge train")
    from ..training.recipes import load_recipe, with_overrides
    from ..training.trainer import train as run_train

    recipe = with_overrides(load_recipe(recipe_name), epochs, batch_size, lr, seed, protocol, weights,
                            teachers=list(teachers) or None, precision=precision)
    summary = run_train(recipe, data_path, out, kind=kind, resume=resume, overwrite=overwrite,
                        log=_json_log if as_json else (lambda s: click.echo(s)), limit=limit,
                        strategy_name=strategy)
    if as_json:
        click.echo(json.dumps({"out": out, **summary}, indent=2))
    elif summary.get("role") == "worker":  # --strategy multiworker, not the chief
        click.echo(f"done: {summary['task']} trained {summary['epochs_run']} epoch(s); the chief wrote {out} "
                   f"(test accuracy {summary['chief_test_accuracy']:.4f})")
    else:
        click.echo(f"done: {out} test accuracy {summary['test_accuracy']:.4f} macro-F1 {summary['test_macro_f1']:.4f}")


def _json_log(line: str) -> None:
    """--json keeps stdout for the JSON; warnings still reach the user, on stderr."""
    if line.startswith("warning:"):
        click.echo(line, err=True)


@click.command("eval")
@click.argument("model", type=click.Path())
@click.option("--data", "data_path", required=True, type=click.Path(), help="Dataset file or folder.")
@click.option("--kind", default=None, help="Dataset reader; auto-detected if omitted.")
@click.option("--split", default=None, help="Split name or role (train/val/test); default: the bundle's test selector, else test, else all.")
@click.option("--protocol", type=click.Choice(["bundle", "split", "all"]), default=None,
              help="bundle: the bundle's stored test selector; split: --split; all: every sample.")
@click.option("--labels", default=None, help="Plain model files only: label order (a set name like fer7, or comma list; default fer7).")
@click.option("--input-norm", type=click.Choice(["none", "unit", "tanh"]), default=None,
              help="Plain model files only: input scaling (none 0..255 (default), unit x/255, tanh x/127.5-1).")
@click.option("--color", type=click.Choice(["gray", "rgb"]), default=None,
              help="Plain model files only: input colour (default from the model's channels).")
@click.option("--interpolation", type=click.Choice(INTERPOLATIONS), default=None,
              help="Plain model files only: resize interpolation (default area).")
@click.option("--tta", type=click.Choice(TTA_MODES), default=None,
              help="Test-time views averaged per face (default: the bundle's own; none for plain model files).")
@click.option("--out", default=None, type=click.Path(), help="Folder for metrics.json, plots and report.md.")
@click.option("--json", "as_json", is_flag=True)
def eval_cmd(model, data_path, kind, split, protocol, labels, input_norm, color, interpolation, tta, out, as_json):
    """Evaluate a bundle of any format (a train run, a converted TFLite/ONNX/OpenVINO bundle) or a plain
    Keras file on a dataset: accuracy, macro-F1, per-class, confusion (t-SNE for Keras models)."""
    from ..training.evaluation_cmd import evaluate_model

    res = evaluate_model(model, data_path, kind=kind, split=split, protocol=protocol, labels=labels,
                         input_norm=input_norm, color=color, interpolation=interpolation, out=out, tta=tta)
    if as_json:
        click.echo(json.dumps(res["summary"], indent=2))
    else:
        s = res["summary"]
        sel = s["selection"]
        sel = ", ".join(f"{k} {v}" for k, v in sel.items()) if isinstance(sel, dict) else sel
        dropped = (f"; left out: {', '.join(s['dropped_labels'])} (not among the model's labels)"
                   if s["dropped_labels"] else "")
        click.echo(f"{s['model']} on {s['data']} [{sel}]: accuracy {s['accuracy']:.4f} "
                   f"macro-F1 {s['macro_f1']:.4f} (n={s['n']}){dropped}" + (f" -> {out}" if out else ""))
