"""The hand-written floor: what a user writes instead of `zoo export multiclass`.

Train the seed's multiclass net on scikit-learn's digits (same split size,
hidden size, epochs, batch size and learning rate as zoo's defaults), export it
with torch.onnx, and check onnxruntime's probabilities against torch's. No zoo.

    python benchmarks/floor.py [--exporter torchscript|dynamo] [--out model.onnx]
"""

import argparse
import warnings

import numpy as np
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript")
parser.add_argument("--out", default="floor.onnx")
args = parser.parse_args()
warnings.simplefilter("ignore")

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train = torch.tensor(scaler.transform(X_train), dtype=torch.float32)
X_test = torch.tensor(scaler.transform(X_test), dtype=torch.float32)
y_train = torch.tensor(y_train)

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.CrossEntropyLoss()
for _ in range(30):
    order = torch.randperm(len(X_train))
    for start in range(0, len(X_train), 32):
        index = order[start:start + 32]
        loss = loss_fn(model(X_train[index]), y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

model.eval()
with torch.inference_mode():
    probabilities = torch.softmax(model(X_test), dim=1).numpy()
print("held-out accuracy", (probabilities.argmax(1) == y_test).mean())

if args.exporter == "torchscript":
    torch.onnx.export(model, (X_test[:2],), args.out, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
else:
    torch.onnx.export(model, (X_test[:2],), args.out, input_names=["input"], output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True).save(args.out)

session = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"])
logits = session.run(None, {"input": X_test.numpy()})[0]
shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
onnx_probabilities = shifted / shifted.sum(axis=1, keepdims=True)
assert np.allclose(onnx_probabilities, probabilities, atol=1e-5), "onnxruntime differs from torch"
print("parity ok")
