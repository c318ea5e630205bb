// Empty stand-in for optional native modules (bufferutil, utf-8-validate, supports-color) in the bundle.
module.exports = {};
