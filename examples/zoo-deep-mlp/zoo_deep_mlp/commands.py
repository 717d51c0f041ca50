"""`zoo confusion`: a command added by a plugin, reusing zoo's training options."""

import click

from zoo.options import train_from_options, training_options


@click.command()
@click.argument("name")
@training_options
def confusion(name, **options):
    """Train model NAME briefly and print its held-out confusion matrix (rows: true, columns: predicted)."""
    import numpy as np
    import torch

    result = train_from_options(name, options)
    click.echo(result.describe())
    split, policy = result.split, result.policy
    with torch.inference_mode():
        output = result.module(torch.from_numpy((split.X_test - split.mean) * split.scale))
        predicted = policy.decide(policy.probabilities(output)).numpy()
    labels = result.class_labels
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, (split.y_test, predicted), 1)
    width = max(6, *(len(label) for label in labels))
    click.echo(" " * width + "".join(label.rjust(width + 1) for label in labels))
    for label, row in zip(labels, matrix):
        click.echo(label.rjust(width) + "".join(str(v).rjust(width + 1) for v in row))
