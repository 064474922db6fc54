//! SQL analysis: the psql-script lexer, the destructive-statement
//! classifier and the findings they produce (not built yet).
