"""The DeSTA network (:mod:`desta.model.desta`), its processor, backbones, loading and conversion."""
