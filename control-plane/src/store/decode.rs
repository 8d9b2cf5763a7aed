//! Decoding a row into a plain struct by column name.
//!
//! Most reads fill a struct whose fields are the query's columns, one for
//! one: [`decode!`] writes that mapping once. Matching by name rather than by
//! position means a column added to a query or a field moved in a struct
//! cannot silently shift every value after it; a field without a column of
//! its name is an error, as a wrong type is. Rows that parse what they read
//! (names, roles, JSON) keep their own decoders (`alias_rows::from_row`).

/// `decode!(row => KeyInfo { id, name, role })` is `KeyInfo { id:
/// row.try_get("id")?, name: row.try_get("name")?, ... }`: every field read
/// from the column of its name, so the query names its columns (`AS active`)
/// as the struct names its fields. Used where `?` turns a
/// `tokio_postgres::Error` into a `StoreError`.
macro_rules! decode {
    ($row:expr => $ty:ident { $($field:ident),+ $(,)? }) => {{
        let row = $row;
        $ty { $($field: row.try_get(stringify!($field))?),+ }
    }};
}

pub(crate) use decode;
