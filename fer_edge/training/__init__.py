"""Training: recipes as data, model builders, the trainer, evaluation and reports.

Importing this package is light; TensorFlow/Keras are imported inside the functions
that need them so `fer-edge --help` stays fast.
"""
