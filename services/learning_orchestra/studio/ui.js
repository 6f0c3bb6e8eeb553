// The UI library, from one place: Preact with hooks and htm's tagged templates (vendored:
// vendor/README.md). Templates are plain JavaScript, so the studio needs no build step.

export {
  html,
  render,
  useCallback,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
} from "./vendor/htm-preact-standalone.module.js";
