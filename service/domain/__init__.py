"""Business rules of the register, free of HTTP: reads, transactional writes, domain errors."""
