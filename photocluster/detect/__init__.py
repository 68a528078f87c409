"""Detect: files to faces. Walking and decoding images, and the dlib edge (detection,
5-point alignment, 150x150 chips, 128-d descriptors) on dlib or on the onnx engine.

Imports only ``core``; never the store. dlib objects never leave this package.
"""
