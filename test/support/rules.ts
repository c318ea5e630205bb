// Rule texts shared by tests and scripts; free of import.meta so scripts bundled to CommonJS (the soak agent) can use them.

/** The README's example rule (YAML, one list item under `rules:`), shared by tests that need a plain header rule. */
export const CAMERA_MOTION_RULE = `  - name: camera-motion
    when:
      from: { contains: "@nvr.local" }
      subject: { regex: "^ALARM: (?<event>.+?) (?<camera>Camera \\\\d+)$" }
    publish:
      topic: "alerts/{{camera}}"
`;
