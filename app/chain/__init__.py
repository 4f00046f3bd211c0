"""The Solana adapter: standard JSON-RPC only, so the same code runs against devnet or mainnet."""
