"""WSA Lab in a Flower federation: clients whose local training is WSA Lab's engine (through
`wsa-lab flower train`) and a strategy that averages the models and fuses the clients' weight
scopes into the next target (method.md section 6)."""
