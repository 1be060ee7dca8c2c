import { LabIcon } from '@jupyterlab/ui-components';

/** An Erlenmeyer flask, filled at the bottom: what distillation leaves behind. */
const flask = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" fill-rule="evenodd"
    d="M8.5 2h7v2H14v4.6l5.6 9.7A2.5 2.5 0 0 1 17.4 22H6.6a2.5 2.5 0 0 1-2.2-3.7L10 8.6V4H8.5V2zM11 4v5.3L7.7 15h8.6L13 9.3V4z"/>
</svg>`;

export const distillIcon = new LabIcon({ name: 'nbdistill:flask', svgstr: flask });
