// Type declarations for the part of libmime this project uses (the package ships no types).
declare module 'libmime' {
  interface ParsedHeaderValue { value: string; params: Record<string, string> }
  const libmime: {
    decodeWords(str: string): string;
    parseHeaderValue(str: string): ParsedHeaderValue;
    detectMimeType(extension: string): string;
  };
  export default libmime;
}
