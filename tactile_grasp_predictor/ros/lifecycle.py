"""A managed (lifecycle) node that also runs as a plain node: :class:`ManagedNode`.

ROS 2 users with a lifecycle manager (nav2's, a launch file's ``LifecycleNode`` events,
``ros2 lifecycle set``) expect a node to come up *unconfigured*, take its resources at
``configure``, start work at ``activate``, stop at ``deactivate`` and free everything at
``cleanup``; users without one expect ``ros2 run`` to just work. A :class:`ManagedNode`
does both: :meth:`ManagedNode.start` with ``managed=False`` configures and activates it at
once (a failure raises, as a plain node's start-up error does), with ``managed=True`` it
waits for transitions.

Subclasses implement :meth:`~ManagedNode.configure`, :meth:`~ManagedNode.activate`,
:meth:`~ManagedNode.deactivate` and :meth:`~ManagedNode.cleanup`; ``deactivate`` and
``cleanup`` must be safe to call when there is nothing to stop or free. A hook that raises
:class:`~tactile_grasp_predictor.errors.TgpError` fails its transition with the message
logged at ERROR (rclpy alone would swallow it); any other exception is logged with its type
and takes the node through error processing back to unconfigured.

Example::

    class Camera(ManagedNode):
        def configure(self): self.device = open_device()   # raise TgpError("...") to refuse
        def activate(self): self.timer = self.create_timer(0.1, self.grab)
        def deactivate(self): self.destroy_timer(self.timer)
        def cleanup(self): self.device.close()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from tactile_grasp_predictor.errors import TgpError

#: The state a successful transition hook leaves the node in.
_AFTER = {"configure": "inactive", "activate": "active", "deactivate": "inactive", "cleanup": "unconfigured",
          "shutdown": "finalized"}


class ManagedNode(LifecycleNode):
    """A lifecycle node with transition hooks that log why they fail; see the module docstring."""

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.lifecycle_state = "unconfigured"
        self._failure: BaseException | None = None

    # ---------------------------------------------------------------- hooks for subclasses
    def configure(self) -> None:
        """Take the resources (raise :class:`TgpError` to refuse, naming why)."""

    def activate(self) -> None:
        """Start work."""

    def deactivate(self) -> None:
        """Stop work, keep the resources."""

    def cleanup(self) -> None:
        """Free what :meth:`configure` took (also after a failed :meth:`configure`)."""

    # ---------------------------------------------------------------- plain-node mode
    def start(self, managed: bool) -> None:
        """Configure and activate now (``managed`` False), or wait for a lifecycle manager."""
        if managed:
            self.get_logger().info("managed: unconfigured, waiting for configure / activate")
            return
        for name, trigger in (("configure", self.trigger_configure), ("activate", self.trigger_activate)):
            if trigger() != TransitionCallbackReturn.SUCCESS:
                failure = self._failure
                if isinstance(failure, TgpError):
                    raise failure
                raise TgpError(f"{name} failed: {failure}")

    @property
    def active(self) -> bool:
        """Tell whether the node is in the active state."""
        return self.lifecycle_state == "active"

    # ---------------------------------------------------------------- rclpy's callbacks
    def _transition(self, name: str, hook: Callable[[], None]) -> TransitionCallbackReturn:
        self._failure = None
        try:
            hook()
        except TgpError as exc:
            self._failure = exc
            self.get_logger().error(f"{name} failed: {exc}")
            undo = {"configure": self.cleanup, "activate": self.deactivate}.get(name)
            if undo is not None:  # a refused transition leaves the node as it was
                self._quietly(undo)
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # a bug: error processing, then unconfigured
            self._failure = exc
            self.get_logger().error(f"{name} raised {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.ERROR
        self.lifecycle_state = _AFTER[name]
        return TransitionCallbackReturn.SUCCESS

    def _quietly(self, hook: Callable[[], None]) -> None:
        try:
            hook()
        except Exception as exc:  # already failing: report, do not mask the first error
            self.get_logger().error(f"{hook.__name__} after the failure raised {type(exc).__name__}: {exc}")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Run :meth:`configure`."""
        return self._transition("configure", self.configure)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Run :meth:`activate`."""
        return self._transition("activate", self.activate)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Run :meth:`deactivate`."""
        return self._transition("deactivate", self.deactivate)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Run :meth:`cleanup`."""
        return self._transition("cleanup", self.cleanup)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Deactivate, then clean up."""
        def shutdown() -> None:
            self.deactivate()
            self.cleanup()

        return self._transition("shutdown", shutdown)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free everything after a hook raised (deactivate, cleanup); the node returns to unconfigured."""
        self._quietly(self.deactivate)
        self._quietly(self.cleanup)
        self.lifecycle_state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS
