"""Operations: health and readiness, Prometheus metrics, logging with redaction."""
