"""Run in a subprocess with MediaPipe (installed apart, in .venv/peers/mediapipe) on the path: read
a TFLite file's metadata with MediaPipe's generated schema reader and classify an image with its
ImageClassifier task, which needs that metadata (normalization, labels). Prints one JSON object.

    python tests/edge/mediapipe_probe.py MODEL.tflite IMAGE.npy
"""
import io
import json
import sys
import zipfile

import numpy as np


def read_metadata(data: bytes) -> dict:
    from ai_edge_litert import schema_py_generated as schema
    from mediapipe.tasks.metadata import metadata_schema_py_generated as ms
    model = schema.Model.GetRootAs(data, 0)
    entries = {model.Metadata(i).Name(): model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
    raw = model.Buffers(entries[b"TFLITE_METADATA"]).DataAsNumpy().tobytes()
    assert ms.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0)
    meta = ms.ModelMetadata.GetRootAsModelMetadata(raw, 0)
    graph = meta.SubgraphMetadata(0)

    def tensor(t):
        entry = {"name": t.Name().decode(), "content": t.Content().ContentPropertiesType() if t.Content() else None}
        if t.ProcessUnitsLength():
            unit = t.ProcessUnits(0)
            options = ms.NormalizationOptions()
            options.Init(unit.Options().Bytes, unit.Options().Pos)
            entry["normalization"] = {"type": unit.OptionsType(), "mean": options.MeanAsNumpy().tolist(),
                                      "std": options.StdAsNumpy().tolist()}
        entry["files"] = [(t.AssociatedFiles(i).Name().decode(), t.AssociatedFiles(i).Type())
                          for i in range(t.AssociatedFilesLength())]
        return entry
    return {"name": meta.Name().decode(), "min_parser_version": meta.MinParserVersion().decode(),
            "inputs": [tensor(graph.InputTensorMetadata(i)) for i in range(graph.InputTensorMetadataLength())],
            "outputs": [tensor(graph.OutputTensorMetadata(i)) for i in range(graph.OutputTensorMetadataLength())],
            "packed": {name: zipfile.ZipFile(io.BytesIO(data)).read(name).decode()
                       for name in zipfile.ZipFile(io.BytesIO(data)).namelist()}}


def classify(path: str, image: np.ndarray) -> list:
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core import base_options
    options = vision.ImageClassifierOptions(base_options=base_options.BaseOptions(model_asset_path=path), max_results=3)
    classifier = vision.ImageClassifier.create_from_options(options)
    try:
        result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
    finally:
        classifier.close()
    return [{"index": c.index, "score": c.score, "label": c.category_name} for c in result.classifications[0].categories]


if __name__ == "__main__":
    model_path, image_path = sys.argv[1:3]
    data = open(model_path, "rb").read()
    print(json.dumps({"metadata": read_metadata(data), "classes": classify(model_path, np.load(image_path))}))
