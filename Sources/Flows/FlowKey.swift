// Flow identity and the bounded flow table.
