"""Model writers: an edgec :class:`~edgec.ir.graph.Graph` -> a model file other tools run.

* :mod:`edgec.exporters.tflite`: TFLite flatbuffers (int8 and float graphs in
  TFLite's NHWC layouts), so the TFLite Micro interpreter and ai-edge-litert can
  run what edgec produced or transformed.
"""
