/**
 * page.js is the dashboard's browser script. Fulcrum never runs it: it imports
 * the file as text (`with { type: "text" }`) to inline it into the page, and
 * this tells TypeScript what that import gives.
 */
declare const source: string;
export default source;
