"""The artifact contract between training and the server: a model version directory (docs/artifacts.md).

`schema` holds the typed manifest, `checks` the validator, `read` and `write` the two directions,
`versions` the version-directory rules and `session` the onnxruntime options both sides run graphs with.
This package imports neither training nor the server; both import it.
"""
