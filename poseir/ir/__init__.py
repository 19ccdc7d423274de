"""The IR: graphs, the symbolic dim algebra, facts, axis identity and networkx views."""
