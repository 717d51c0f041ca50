"""The hand-written floor of batch scoring: what a user writes instead of `zoo predict`. No zoo.

Reads the whole input (an .npy with numpy, a .parquet or .csv with pyarrow), runs
onnxruntime in slices of 65,536 rows and writes label, class_index and p_<class>
columns with pyarrow, as `zoo predict` does, to .parquet or .csv by extension.

    python benchmarks/batch_floor.py MODEL.onnx INPUT OUTPUT
"""

import json
import sys

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

model, source, target = sys.argv[1:4]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
classes = json.loads(session.get_modelmeta().custom_metadata_map["zoo.class_labels"])
if source.endswith(".npy"):
    X = np.load(source)
else:
    table = pq.read_table(source) if source.endswith(".parquet") else pcsv.read_csv(source)
    X = np.column_stack([c.to_numpy() for c in table.columns]).astype(np.float32)
outputs = [session.run(["probabilities", "label"], {"input": X[s:s + 65536]}) for s in range(0, len(X), 65536)]
probabilities = np.concatenate([o[0] for o in outputs])
labels = np.concatenate([o[1] for o in outputs])
columns = {"label": pc.take(pa.array(classes), pa.array(labels)), "class_index": labels}
columns.update({f"p_{c}": probabilities[:, j] for j, c in enumerate(classes)})
result = pa.table(columns)
pq.write_table(result, target) if target.endswith(".parquet") else pcsv.write_csv(result, target)
