// Package transport is the HTTP front end of the flash sale: routes, JSON
// decoding and encoding, error mapping, webhook signatures, admin auth, the
// access log, metrics and health. It speaks fasthttp and calls the engine;
// it holds no domain state of its own.
//
// A connection's life: Server.Listener counts it against the connection
// limits (above them it gets a JSON 503 and is closed) and drains it before
// closing, so that an answer the client has not read yet is not lost to a
// TCP reset. A request's life: the fasthttp server reads it (headers above
// readBufferBytes and bodies above bodyBytesMax are refused by fasthttp
// itself through ErrorHandler, without reading the rest);
// Server.Handler sends the hot parameterised GETs to their route directly and
// everything else through fasthttp/router; the route's wrapper starts the
// clock and defers the access log, the metrics and panic recovery; the
// handler checks the size, parses the body with a pooled fastjson parser,
// validates every field, calls the engine (which answers once the records
// are durable), and appends the JSON answer to a pooled buffer that is
// copied into the response. Nothing taken from the request outlives the
// handler: the engine copies what it keeps.
package transport
