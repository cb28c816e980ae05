"""The application interface: the contract between the node runtime and the application it runs.

The runtime imports only this package; an application (``node.healthcare``)
implements ``Application`` and is handed to the node when the process starts.
"""

from node.app.interface import Application, BlockResult, Prechecked, Rejected, StateReader, TxResult

__all__ = ["Application", "BlockResult", "Prechecked", "Rejected", "StateReader", "TxResult"]
